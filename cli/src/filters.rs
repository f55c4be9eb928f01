//! What Docker's listing commands share in their `--filter KEY=VALUE`s:
//! values of one key are alternatives and keys must all hold, but every
//! `label=` filter must hold (Docker matches labels as a list); a `label=`
//! filter names a key, and a value if it has a `=`.

use std::collections::BTreeMap;
use std::mem;
use std::time::SystemTime;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::times::parse_time;

/// A listing's filter: one enum, a variant per key.
pub trait ListFilter {
    /// Whether it is a `label=` filter, which must hold whatever others of
    /// its key do.
    fn is_label(&self) -> bool;
}

/// Whether `filters` all hold, as `holds` tells of one: for each key, any
/// of its values; each label.
pub fn all_hold<F: ListFilter>(filters: &[F], holds: impl Fn(&F) -> bool) -> bool {
    filters.iter().all(|filter| {
        if filter.is_label() {
            return holds(filter);
        }
        let same_key = |other: &&F| mem::discriminant(*other) == mem::discriminant(filter);
        filters.iter().filter(same_key).any(&holds)
    })
}

/// A `label=` filter's wanted label: `KEY`, or `KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelFilter {
    key: String,
    value: Option<String>,
}

impl LabelFilter {
    /// Reads what follows `label=`.
    pub fn parse(wanted: &str) -> LabelFilter {
        match wanted.split_once('=') {
            Some((key, value)) => LabelFilter {
                key: key.to_owned(),
                value: Some(value.to_owned()),
            },
            None => LabelFilter {
                key: wanted.to_owned(),
                value: None,
            },
        }
    }

    /// Whether `labels` have the key (with the value, if one is wanted).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        labels
            .get(&self.key)
            .is_some_and(|found| self.value.as_ref().is_none_or(|wanted| found == wanted))
    }
}

/// A prune's `--filter`: `until=TIME` (made before then: RFC 3339, Unix
/// seconds, or a duration before now, `24h`), `label=KEY[=VALUE]`,
/// `label!=KEY[=VALUE]` (without that label).
#[derive(Debug, Clone)]
pub enum PruneFilter {
    Until(SystemTime),
    Label(LabelFilter),
    NotLabel(LabelFilter),
}

impl PruneFilter {
    /// Reads one `--filter` value.
    pub fn parse(value: &str) -> Result<PruneFilter, String> {
        let invalid = || {
            format!(
                "{value:?}: prune filters are until=TIME, label=KEY[=VALUE], label!=KEY[=VALUE]"
            )
        };
        if let Some(wanted) = value.strip_prefix("label!=") {
            return Ok(PruneFilter::NotLabel(LabelFilter::parse(wanted)));
        }
        match value.split_once('=').ok_or_else(invalid)? {
            ("until", time) => parse_time(time).map(PruneFilter::Until),
            ("label", wanted) => Ok(PruneFilter::Label(LabelFilter::parse(wanted))),
            _ => Err(invalid()),
        }
    }

    /// Whether something made at `created` (RFC 3339) with `labels` is
    /// pruned as far as this filter goes.
    pub fn holds(&self, created: &str, labels: &BTreeMap<String, String>) -> bool {
        match self {
            PruneFilter::Until(until) => OffsetDateTime::parse(created, &Rfc3339)
                .is_ok_and(|created| SystemTime::from(created) < *until),
            PruneFilter::Label(label) => label.matches(labels),
            PruneFilter::NotLabel(label) => !label.matches(labels),
        }
    }
}

impl ListFilter for PruneFilter {
    fn is_label(&self) -> bool {
        matches!(self, PruneFilter::Label(_) | PruneFilter::NotLabel(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    enum Filter {
        Even(bool),
        Below(u32),
        /// Stands for a label: a divisor.
        Label(u32),
    }

    impl ListFilter for Filter {
        fn is_label(&self) -> bool {
            matches!(self, Filter::Label(_))
        }
    }

    fn holds(n: u32) -> impl Fn(&Filter) -> bool {
        move |filter: &Filter| match filter {
            Filter::Even(even) => n.is_multiple_of(2) == *even,
            Filter::Below(limit) => n < *limit,
            Filter::Label(divisor) => n.is_multiple_of(*divisor),
        }
    }

    #[test]
    fn values_of_a_key_are_alternatives_and_keys_all_hold() {
        let filters = [Filter::Even(true), Filter::Even(false), Filter::Below(5)];
        assert!(all_hold(&filters, holds(3)));
        assert!(!all_hold(&filters, holds(7)));
        assert!(all_hold::<Filter>(&[], holds(7)));
    }

    #[test]
    fn every_label_must_hold() {
        let filters = [Filter::Label(2), Filter::Label(3)];
        assert!(all_hold(&filters, holds(12)));
        assert!(!all_hold(&filters, holds(4)));
    }

    #[test]
    fn prunes_take_an_age_and_labels_present_or_absent() {
        let labels = BTreeMap::from([("keep".to_owned(), "yes".to_owned())]);
        let filter = |value: &str| PruneFilter::parse(value).unwrap();
        let old = "2020-01-01T00:00:00Z";
        let new = time::OffsetDateTime::now_utc().format(&Rfc3339).unwrap();
        assert!(filter("until=24h").holds(old, &labels));
        assert!(!filter("until=24h").holds(&new, &labels));
        assert!(filter("label=keep=yes").holds(old, &labels));
        assert!(!filter("label!=keep").holds(old, &labels));
        assert!(filter("label!=other").holds(old, &labels));
        assert!(PruneFilter::parse("until=soon").is_err());
        assert!(PruneFilter::parse("dangling=true").is_err());
    }

    #[test]
    fn labels_match_by_key_or_key_and_value() {
        let labels = BTreeMap::from([("tier".to_owned(), "web".to_owned())]);
        assert!(LabelFilter::parse("tier").matches(&labels));
        assert!(LabelFilter::parse("tier=web").matches(&labels));
        assert!(!LabelFilter::parse("tier=db").matches(&labels));
        assert!(!LabelFilter::parse("tier=").matches(&labels));
        assert!(!LabelFilter::parse("owner").matches(&labels));
    }
}
