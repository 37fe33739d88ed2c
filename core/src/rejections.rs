//! The tags most recently rejected, with their reason: what a status page
//! shows next to the tag table (rejected entries never get a slot).

use heapless::index_map::FnvIndexMap;

use crate::config::REJECTED_TAGS_SHOWN;
use crate::reject::{KeyPreview, RejectReason};
use crate::time::Instant;

/// One rejected tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedTag {
    /// Its key (or `device/tag_id` when no key could be built).
    pub tag: KeyPreview,
    /// Why it was rejected the last time.
    pub reason: RejectReason,
    /// How many of its readings were rejected.
    pub count: u64,
    /// The last rejection.
    pub last_at: Instant,
}

/// Up to [`REJECTED_TAGS_SHOWN`] rejected tags; once full, further tags are
/// only counted (in `tags_rejected_total` and [`RejectedTags::untracked`]).
#[derive(Default)]
pub struct RejectedTags {
    entries: FnvIndexMap<u32, RejectedTag, REJECTED_TAGS_SHOWN>,
    untracked: u64,
}

impl RejectedTags {
    /// Records a rejection of `tag`.
    pub(crate) fn record(&mut self, tag: &KeyPreview, reason: RejectReason, now: Instant) {
        let hash = tag.hash();
        if let Some(entry) = self.entries.get_mut(&hash) {
            entry.reason = reason;
            entry.count += 1;
            entry.last_at = now;
            return;
        }
        let entry = RejectedTag {
            tag: tag.clone(),
            reason,
            count: 1,
            last_at: now,
        };
        if self.entries.insert(hash, entry).is_err() {
            self.untracked += 1;
        }
    }

    /// Every tracked tag, in order of first rejection.
    pub fn iter(&self) -> impl Iterator<Item = &RejectedTag> {
        self.entries.values()
    }

    /// How many tracked tags there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no tag was rejected.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Rejections of tags that did not fit in the list.
    pub fn untracked(&self) -> u64 {
        self.untracked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_tag_and_keeps_the_last_reason() {
        let mut list = RejectedTags::default();
        let a = KeyPreview::of_key("Boiler-1.temp");
        let b = KeyPreview::of_key("Boiler-1.flow");
        list.record(&a, RejectReason::NonFiniteNumber, Instant::from_millis(1));
        list.record(&b, RejectReason::NullValue, Instant::from_millis(2));
        list.record(&a, RejectReason::StringTooLong, Instant::from_millis(3));
        let seen: std::vec::Vec<_> = list
            .iter()
            .map(|r| {
                (
                    r.tag.text.as_str(),
                    r.reason,
                    r.count,
                    r.last_at.total_millis(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("Boiler-1.temp", RejectReason::StringTooLong, 2, 3),
                ("Boiler-1.flow", RejectReason::NullValue, 1, 2),
            ]
        );
        assert_eq!(list.untracked(), 0);
    }

    #[test]
    fn a_full_list_counts_the_rest() {
        let mut list = RejectedTags::default();
        for i in 0..REJECTED_TAGS_SHOWN + 3 {
            let mut name = heapless::String::<16>::new();
            core::fmt::write(&mut name, format_args!("t{i}")).unwrap();
            list.record(
                &KeyPreview::of_key(&name),
                RejectReason::NullValue,
                Instant::default(),
            );
        }
        assert_eq!(list.len(), REJECTED_TAGS_SHOWN);
        assert_eq!(list.untracked(), 3);
    }
}
