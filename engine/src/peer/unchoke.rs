//! Unchoking a peer the moment it says it is interested, when an upload slot is free (or it
//! is a fleet peer, which needs none), rather than waiting for the next rechoke.

/// Whether a peer that just sent INTERESTED (or NOT INTERESTED) is unchoked now. `take_slot`
/// claims one of the torrent's upload slots and says whether it got one; it is called only
/// for an interested, still choked, non-fleet peer, so a slot is never taken for nothing.
pub fn unchoke_on_interest(
    interested: bool,
    unchoked: bool,
    fleet: bool,
    take_slot: impl FnOnce() -> bool,
) -> bool {
    interested && !unchoked && (fleet || take_slot())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_slot_is_taken_only_when_it_unchokes_someone() {
        let taken = Cell::new(0);
        let slot = |free: bool| {
            let taken = &taken;
            move || {
                taken.set(taken.get() + 1);
                free
            }
        };
        assert!(unchoke_on_interest(true, false, false, slot(true)));
        assert!(!unchoke_on_interest(true, false, false, slot(false)), "no slot free");
        assert_eq!(taken.get(), 2);
        assert!(unchoke_on_interest(true, false, true, slot(false)), "a fleet peer needs no slot");
        assert!(!unchoke_on_interest(true, true, false, slot(true)), "already unchoked");
        assert!(!unchoke_on_interest(false, false, false, slot(true)), "not interested");
        assert_eq!(taken.get(), 2, "no slot taken for the last three");
    }
}
