//! Names of a URL-only distribution before its `.torrent` exists. Every relay derives the task
//! id and the file layout from the URL and the file's length alone, so several relays pulling
//! the same URL produce the same pieces, the same hashes and the same final info-hash; and the
//! clients and relays of one distribution meet in a provisional swarm whose info-hash only
//! those who know the distribution's id can name.

use crate::hash::sha1;
use crate::types::{hex, InfoHash};

/// Label mixed into a provisional info-hash, so it can never equal a real torrent's.
const PROVISIONAL_LABEL: &[u8] = b"floodgate provisional swarm v1\0";

/// The id a relay gives the URL-only task of `origin_url`: the hex SHA-1 of the URL as given.
pub fn url_task_id(origin_url: &str) -> String {
    hex(&sha1(origin_url.as_bytes()))
}

/// The info-hash of the provisional swarm of the distribution `key` (its id, which ctl hands
/// only to the relays and clients it assigned): peers that do not know the distribution
/// cannot name it in a handshake, so they cannot join.
pub fn provisional_info_hash(key: &str) -> InfoHash {
    let mut input = PROVISIONAL_LABEL.to_vec();
    input.extend_from_slice(key.as_bytes());
    InfoHash(sha1(&input))
}

/// The file name of a URL-only task: the last path segment of the URL's target when it is a
/// plain name (`[A-Za-z0-9._-]`, not starting with a dot), else `data`.
pub fn url_file_name(target: &str) -> String {
    target
        .split(['?', '#'])
        .next()
        .and_then(|p| p.rsplit('/').next())
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)))
        .filter(|n| !n.starts_with('.'))
        .unwrap_or("data")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_pure_functions_of_their_inputs() {
        assert_eq!(url_task_id("http://o/f.bin"), url_task_id("http://o/f.bin"));
        assert_ne!(url_task_id("http://o/f.bin"), url_task_id("http://o/g.bin"));
        assert_eq!(url_task_id("x").len(), 40);
        assert_eq!(provisional_info_hash("d1"), provisional_info_hash("d1"));
        assert_ne!(provisional_info_hash("d1"), provisional_info_hash("d2"));
        assert_ne!(provisional_info_hash("d1").0, sha1(b"d1"), "labelled");
        assert_eq!(url_file_name("/a/b/file-1.iso?x=1"), "file-1.iso");
        assert_eq!(url_file_name("/a/"), "data");
        assert_eq!(url_file_name("/.hidden"), "data");
        assert_eq!(url_file_name("/a/%2e%2e"), "data");
        assert_eq!(url_file_name("/x y"), "data");
    }
}
