//! What Docker's prune commands print: a section for each kind of thing
//! removed, then the space that freed (`system prune` adds its parts up).

use crate::image_cmd::human_size;

/// What a prune removed, as Docker prints it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// `Deleted Containers:`, a line each and a blank line, for each kind
    /// of thing removed; empty if nothing went.
    listing: String,
    /// The bytes that freed.
    bytes: u64,
}

impl PruneReport {
    /// The section titled `title` (`Deleted Volumes:`) of `lines`, none if
    /// there are none, and the `bytes` they freed.
    pub fn new(title: &str, lines: &[String], bytes: u64) -> PruneReport {
        let listing = match lines.is_empty() {
            true => String::new(),
            false => format!("{title}\n{}\n\n", lines.join("\n")),
        };
        PruneReport { listing, bytes }
    }

    /// This report, then `other`'s.
    pub fn and(self, other: PruneReport) -> PruneReport {
        PruneReport {
            listing: self.listing + &other.listing,
            bytes: self.bytes + other.bytes,
        }
    }

    /// The sections alone (`network prune`, which frees no space).
    pub fn listing(&self) -> &str {
        &self.listing
    }

    /// The sections, then `Total reclaimed space: SIZE`.
    pub fn with_total(&self) -> String {
        format!(
            "{}Total reclaimed space: {}\n",
            self.listing,
            human_size(self.bytes, 4)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_read_as_dockers() {
        assert_eq!(
            PruneReport::new("Deleted Containers:", &[], 0).with_total(),
            "Total reclaimed space: 0B\n"
        );
        let containers = PruneReport::new("Deleted Containers:", &["c1".into(), "c2".into()], 1500);
        let networks = PruneReport::new("Deleted Networks:", &["n1".into()], 0);
        assert_eq!(networks.listing(), "Deleted Networks:\nn1\n\n");
        assert_eq!(
            containers.and(networks).with_total(),
            "Deleted Containers:\nc1\nc2\n\nDeleted Networks:\nn1\n\nTotal reclaimed space: 1.5kB\n"
        );
    }
}
