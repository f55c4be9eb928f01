//! Times as hull records them: RFC 3339, UTC.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The current time, RFC 3339.
pub fn now() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .expect("UTC times format as RFC 3339")
}
