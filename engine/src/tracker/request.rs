//! Announce requests as a client sends them: the parameters and the URL built from them.

use std::fmt::Write;

use crate::percent::percent_encode;
use crate::types::{InfoHash, PeerId};

/// The `event` parameter of an announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// The first announce of a download.
    Started,
    /// The download has just finished.
    Completed,
    /// The client is leaving the swarm.
    Stopped,
}

impl Event {
    /// The parameter value (`started`, `completed`, `stopped`).
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Started => "started",
            Event::Completed => "completed",
            Event::Stopped => "stopped",
        }
    }

    /// Parses a parameter value; `None` for anything else (including `empty`).
    pub fn parse(s: &[u8]) -> Option<Event> {
        match s {
            b"started" => Some(Event::Started),
            b"completed" => Some(Event::Completed),
            b"stopped" => Some(Event::Stopped),
            _ => None,
        }
    }
}

/// One announce: who we are, how far we are, and what happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// The torrent.
    pub info_hash: InfoHash,
    /// Our peer id.
    pub peer_id: PeerId,
    /// The port peers can reach us on.
    pub port: u16,
    /// Payload bytes sent since `started`.
    pub uploaded: u64,
    /// Payload bytes received since `started`.
    pub downloaded: u64,
    /// Bytes still missing.
    pub left: u64,
    /// The event, if any (a regular re-announce has none).
    pub event: Option<Event>,
    /// How many peers we would like (`None`: the tracker's default).
    pub numwant: Option<u32>,
    /// A random number identifying us across IP changes.
    pub key: Option<u32>,
}

impl AnnounceRequest {
    /// The full announce URL: `announce` with our parameters appended (after `&` when it already
    /// holds a query). Always asks for the compact form (`compact=1`).
    pub fn url(&self, announce: &str) -> String {
        let mut url = String::with_capacity(announce.len() + 200);
        url.push_str(announce);
        if !announce.contains('?') {
            url.push('?');
        } else if !announce.ends_with('?') && !announce.ends_with('&') {
            url.push('&');
        }
        url.push_str("info_hash=");
        percent_encode(self.info_hash.as_bytes(), &mut url);
        url.push_str("&peer_id=");
        percent_encode(&self.peer_id.0, &mut url);
        let _ = write!(
            url,
            "&port={}&uploaded={}&downloaded={}&left={}&compact=1",
            self.port, self.uploaded, self.downloaded, self.left
        );
        if let Some(e) = self.event {
            let _ = write!(url, "&event={}", e.as_str());
        }
        if let Some(n) = self.numwant {
            let _ = write!(url, "&numwant={n}");
        }
        if let Some(k) = self.key {
            let _ = write!(url, "&key={k:08x}");
        }
        url
    }
}
