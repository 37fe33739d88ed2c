//! The events waiting for the runner, in fixed memory. A change of a
//! peer's state is never lost: when the queue is full it takes the place of
//! the newest report about one tag. Reports about single tags past the
//! queue's room are not dropped silently either: they are counted by kind
//! and summed up in one line ("and 18 more keys not registered") once the
//! queue has drained.

use heapless::Deque;

use crate::event::{Event, TagReport};

/// The queue of `N` events.
pub(crate) struct EventQueue<const N: usize> {
    events: Deque<Event, N>,
    /// Tag reports summed up instead of queued, by kind, since the last
    /// summary of that kind.
    summed_up: [u32; TagReport::ALL.len()],
}

impl<const N: usize> EventQueue<N> {
    pub(crate) const fn new() -> Self {
        EventQueue {
            events: Deque::new(),
            summed_up: [0; TagReport::ALL.len()],
        }
    }

    /// Queues `event`. Returns false when an event will not be logged one
    /// by one: this tag report, summed up for want of room; the newest tag
    /// report, whose place this state change took; or, with only state
    /// changes queued, this one, lost.
    pub(crate) fn push(&mut self, event: Event) -> bool {
        let event = match self.events.push_back(event) {
            Ok(()) => return true,
            Err(event) => event,
        };
        if let Some(kind) = event.tag_report() {
            self.summed_up[kind as usize] += 1;
            return false;
        }
        // A state change: it takes the newest tag report's place.
        let mut kept: heapless::Vec<Event, N> = heapless::Vec::new();
        let mut made_room = false;
        while let Some(last) = self.events.pop_back() {
            if let Some(kind) = last.tag_report() {
                self.summed_up[kind as usize] += 1;
                made_room = true;
                break;
            }
            // Room for each: they came out of a queue of N.
            kept.push(last).ok();
        }
        while let Some(state) = kept.pop() {
            self.events.push_back(state).ok();
        }
        if made_room {
            self.events.push_back(event).ok();
        }
        false
    }

    /// Events queued.
    pub(crate) fn len(&self) -> usize {
        self.events.len()
    }

    /// The next event; once the queue is empty, one summary per kind of
    /// tag report that had no room.
    pub(crate) fn pop(&mut self) -> Option<Event> {
        if let Some(event) = self.events.pop_front() {
            return Some(event);
        }
        let (kind, count) = TagReport::ALL
            .iter()
            .zip(self.summed_up.iter_mut())
            .find(|(_, count)| **count > 0)?;
        Some(Event::MoreTagReports {
            kind: *kind,
            count: core::mem::take(count),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reject::KeyPreview;
    use std::string::{String, ToString};
    use std::vec::Vec;

    fn not_registered(i: u32) -> Event {
        Event::TagNotRegistered {
            key: KeyPreview::of_key(&std::format!("d.t{i}")),
        }
    }

    fn drain<const N: usize>(queue: &mut EventQueue<N>) -> Vec<String> {
        core::iter::from_fn(|| queue.pop())
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn tag_reports_past_the_room_are_summed_up_and_state_changes_kept() {
        let mut queue: EventQueue<4> = EventQueue::new();
        let queued: Vec<bool> = (0..6).map(|i| queue.push(not_registered(i))).collect();
        assert_eq!(queued, [true, true, true, true, false, false]);
        // Queued in the place of the newest report, which is summed up.
        assert!(!queue.push(Event::ApiUp { after_failures: 0 }));
        let lines = drain(&mut queue);
        assert_eq!(lines.len(), 5, "{lines:?}");
        assert!(
            lines[..3]
                .iter()
                .all(|l| l.starts_with("key not registered"))
        );
        assert_eq!(lines[3], "Data-Service HTTP API up");
        assert_eq!(
            lines[4],
            "and 3 more keys not registered in the Data-Service: see /api/tags"
        );
        assert_eq!(queue.pop(), None);
    }

    #[test]
    fn a_state_change_with_only_state_changes_queued_is_lost() {
        let mut queue: EventQueue<2> = EventQueue::new();
        assert!(queue.push(Event::TableFullCleared));
        assert!(queue.push(Event::ApiUp { after_failures: 0 }));
        assert!(!queue.push(Event::TableFullCleared));
        assert_eq!(drain(&mut queue).len(), 2);
    }
}
