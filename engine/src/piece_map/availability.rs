//! Availability: how many connected peers have each piece, and the wanted pieces bucketed by it.
//!
//! The counters are atomics so anyone can read them without a lock. Writers (HAVE, BITFIELD,
//! a peer leaving) take the write side of a `parking_lot::RwLock` around [`RarityOrder`], which
//! keeps every *pickable* piece (wanted, with a block nobody has claimed) in bucket
//! `availability`; a piece moves between
//! buckets in O(1) (swap-remove, then insert at a random position of the next bucket, which is
//! the random tie-break among equally rare pieces). Pickers take the read side, so picks on
//! different threads never exclude each other; the lock is taken once per pick call, never per
//! block. Availability writes are one per HAVE message, far rarer than block events; listing
//! changes are at most a few per piece (fully claimed, released, completed, failed).

use std::sync::atomic::{AtomicU32, Ordering};

use parking_lot::{RwLock, RwLockReadGuard};

use super::bitfield::BitfieldView;
use super::PieceMapError;
use crate::types::PieceIndex;

const UNLISTED: u32 = u32::MAX;

/// Wanted pieces bucketed by availability; bucket order is random.
#[derive(Debug)]
pub(crate) struct RarityOrder {
    buckets: Vec<Vec<u32>>,
    /// Position of each piece inside its bucket, or `UNLISTED`.
    slot: Vec<u32>,
    rng: u64,
}

impl RarityOrder {
    /// Buckets from rarest (availability 0) up; each bucket in random order.
    pub(crate) fn buckets(&self) -> &[Vec<u32>] {
        &self.buckets
    }

    /// Whether `piece` is listed (wanted).
    pub(crate) fn is_listed(&self, piece: u32) -> bool {
        self.slot[piece as usize] != UNLISTED
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64*: cheap, good enough to shuffle ties.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn insert(&mut self, piece: u32, avail: u32) {
        let a = avail as usize;
        if self.buckets.len() <= a {
            self.buckets.resize_with(a + 1, Vec::new);
        }
        let len = self.buckets[a].len();
        let at = (self.next_rand() % (len as u64 + 1)) as usize;
        let bucket = &mut self.buckets[a];
        bucket.push(piece);
        bucket.swap(at, len);
        let moved = bucket[len];
        self.slot[moved as usize] = len as u32;
        self.slot[piece as usize] = at as u32;
    }

    fn remove(&mut self, piece: u32, avail: u32) {
        let at = self.slot[piece as usize];
        if at == UNLISTED {
            return;
        }
        let bucket = &mut self.buckets[avail as usize];
        bucket.swap_remove(at as usize);
        if let Some(&moved) = bucket.get(at as usize) {
            self.slot[moved as usize] = at;
        }
        self.slot[piece as usize] = UNLISTED;
    }

    fn relocate(&mut self, piece: u32, from: u32, to: u32) {
        if self.is_listed(piece) {
            self.remove(piece, from);
            self.insert(piece, to);
        }
    }
}

/// Per-piece availability counters plus the rarity order of wanted pieces.
#[derive(Debug)]
pub(crate) struct Availability {
    counts: Box<[AtomicU32]>,
    order: RwLock<RarityOrder>,
}

impl Availability {
    /// All pieces at availability 0; pieces with `listed(i)` true are wanted (in the order).
    pub(crate) fn new(len: u32, listed: impl Fn(u32) -> bool) -> Self {
        let mut order = RarityOrder {
            buckets: vec![Vec::new()],
            slot: vec![UNLISTED; len as usize],
            rng: 0x9e37_79b9_7f4a_7c15 ^ u64::from(len),
        };
        for p in (0..len).filter(|&p| listed(p)) {
            order.insert(p, 0);
        }
        Availability { counts: (0..len).map(|_| AtomicU32::new(0)).collect(), order: RwLock::new(order) }
    }

    pub(crate) fn get(&self, piece: PieceIndex) -> u32 {
        self.counts[piece.get()].load(Ordering::Relaxed)
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, RarityOrder> {
        self.order.read()
    }

    /// One more peer has `piece` (index already checked).
    pub(crate) fn inc(&self, piece: PieceIndex) {
        let mut order = self.order.write();
        self.inc_locked(&mut order, piece.0);
    }

    fn inc_locked(&self, order: &mut RarityOrder, p: u32) {
        let c = &self.counts[p as usize];
        let a = c.load(Ordering::Relaxed);
        let n = a.saturating_add(1);
        c.store(n, Ordering::Relaxed);
        order.relocate(p, a, n);
    }

    /// One fewer peer has `piece` (index already checked); refuses to go below zero.
    pub(crate) fn dec(&self, piece: PieceIndex) -> Result<(), PieceMapError> {
        let mut order = self.order.write();
        let c = &self.counts[piece.get()];
        let a = c.load(Ordering::Relaxed);
        if a == 0 {
            return Err(PieceMapError::AvailabilityUnderflow { piece });
        }
        c.store(a - 1, Ordering::Relaxed);
        order.relocate(piece.0, a, a - 1);
        Ok(())
    }

    /// Adds a whole peer bitfield under one lock.
    pub(crate) fn add_all(&self, bits: BitfieldView<'_>) {
        let mut order = self.order.write();
        for p in bits.iter_ones() {
            self.inc_locked(&mut order, p.0);
        }
    }

    /// Removes a whole peer bitfield under one lock; all or nothing.
    pub(crate) fn remove_all(&self, bits: BitfieldView<'_>) -> Result<(), PieceMapError> {
        let mut order = self.order.write();
        if let Some(piece) = bits.iter_ones().find(|p| self.get(*p) == 0) {
            return Err(PieceMapError::AvailabilityUnderflow { piece });
        }
        for p in bits.iter_ones() {
            let c = &self.counts[p.get()];
            let a = c.load(Ordering::Relaxed);
            c.store(a - 1, Ordering::Relaxed);
            order.relocate(p.0, a, a - 1);
        }
        Ok(())
    }

    /// Lists or unlists `piece` as `should_list` says, evaluated under the write lock.
    ///
    /// Every change of a piece's state or claimed count that can change whether it belongs in
    /// the order is followed by a `sync`. Since `should_list` reads the counters under the lock,
    /// the last `sync` to run sees every change that came before it, whatever the interleaving.
    pub(crate) fn sync(&self, piece: PieceIndex, should_list: impl FnOnce() -> bool) {
        let mut order = self.order.write();
        let a = self.get(piece);
        match (order.is_listed(piece.0), should_list()) {
            (false, true) => order.insert(piece.0, a),
            (true, false) => order.remove(piece.0, a),
            _ => {}
        }
    }

    /// Checks that every listed piece sits in the bucket of its availability; returns how many.
    pub(crate) fn check(&self) -> Result<usize, String> {
        let order = self.order.read();
        let mut n = 0;
        for (a, bucket) in order.buckets.iter().enumerate() {
            for (i, &p) in bucket.iter().enumerate() {
                if order.slot[p as usize] != i as u32
                    || self.counts[p as usize].load(Ordering::Relaxed) != a as u32
                {
                    return Err(format!("piece {p} misplaced in bucket {a}"));
                }
                n += 1;
            }
        }
        Ok(n)
    }
}
