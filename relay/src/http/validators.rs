//! Conditional requests on task data (RFC 9110 §13): `If-None-Match`, `If-Modified-Since` and
//! `If-Range`, checked against a task's strong ETag and its Last-Modified date.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use floodgate_engine::http::RequestHead;

/// The validators of one task's data.
#[derive(Clone, Debug)]
pub(super) struct Validators {
    /// Strong entity tag, quoted (the content is fixed by the task id).
    pub etag: String,
    /// Last-Modified, whole seconds (what an HTTP date can say).
    pub last_modified: SystemTime,
    /// `last_modified` as an IMF-fixdate.
    pub last_modified_text: String,
}

impl Validators {
    /// Validators for `etag` and a modification time (cut to whole seconds).
    pub(super) fn new(etag: String, modified: SystemTime) -> Self {
        let secs = modified.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let last_modified = UNIX_EPOCH + Duration::from_secs(secs);
        let last_modified_text = httpdate::fmt_http_date(last_modified);
        Validators { etag, last_modified, last_modified_text }
    }

    /// Whether the client's copy is current (answer 304): `If-None-Match` names the ETag
    /// (weak comparison), or, without `If-None-Match`, the data was not modified after the
    /// `If-Modified-Since` date (an invalid date is ignored).
    pub(super) fn not_modified(&self, head: &RequestHead) -> bool {
        if let Some(list) = head.if_none_match.as_deref() {
            return list.split(',').map(str::trim).any(|t| t == "*" || weak_eq(t, &self.etag));
        }
        head.if_modified_since
            .as_deref()
            .and_then(parse_date)
            .is_some_and(|since| self.last_modified <= since)
    }

    /// Whether a `Range` may be honoured: no `If-Range`, or one naming this representation (the
    /// ETag, compared strongly, or exactly the Last-Modified date). Otherwise the whole data is sent.
    pub(super) fn range_allowed(&self, if_range: Option<&str>) -> bool {
        match if_range.map(str::trim) {
            None => true,
            Some(tag) if tag.starts_with('"') || tag.starts_with("W/") => tag == self.etag,
            Some(date) => parse_date(date) == Some(self.last_modified),
        }
    }
}

/// Weak comparison of two entity tags: equal once any `W/` prefix is dropped.
fn weak_eq(a: &str, b: &str) -> bool {
    a.strip_prefix("W/").unwrap_or(a) == b.strip_prefix("W/").unwrap_or(b)
}

/// An HTTP date in any of the three formats RFC 9110 requires recipients to accept.
fn parse_date(text: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(text.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use floodgate_engine::http::parse_request;

    fn head(extra: &str) -> RequestHead {
        let raw = format!("GET /tasks/x/data HTTP/1.1\r\nHost: h\r\n{extra}\r\n");
        parse_request(raw.as_bytes()).expect("valid").expect("complete").0
    }

    fn v() -> Validators {
        // 1994-11-06T08:49:37.5Z: the half second is cut.
        Validators::new("\"abc\"".into(), UNIX_EPOCH + Duration::from_millis(784_111_777_500))
    }

    #[test]
    fn last_modified_is_an_imf_fixdate_of_whole_seconds() {
        assert_eq!(v().last_modified_text, "Sun, 06 Nov 1994 08:49:37 GMT");
    }

    #[test]
    fn if_none_match_uses_weak_comparison_and_wins_over_the_date() {
        assert!(v().not_modified(&head("If-None-Match: \"x\", W/\"abc\"\r\n")));
        assert!(v().not_modified(&head("If-None-Match: *\r\n")));
        assert!(!v().not_modified(&head("If-None-Match: \"other\"\r\n")));
        let both = "If-None-Match: \"other\"\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n";
        assert!(!v().not_modified(&head(both)), "If-Modified-Since is ignored beside If-None-Match");
    }

    #[test]
    fn if_modified_since_in_all_three_formats() {
        for date in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Mon, 07 Nov 1994 00:00:00 GMT",
        ] {
            assert!(v().not_modified(&head(&format!("If-Modified-Since: {date}\r\n"))), "{date}");
        }
        assert!(!v().not_modified(&head("If-Modified-Since: Sun, 06 Nov 1994 08:49:36 GMT\r\n")));
        assert!(!v().not_modified(&head("If-Modified-Since: yesterday\r\n")), "invalid dates are ignored");
        assert!(!v().not_modified(&head("")));
    }

    #[test]
    fn if_range_needs_a_strong_match() {
        let v = v();
        assert!(v.range_allowed(None));
        assert!(v.range_allowed(Some("\"abc\"")));
        assert!(!v.range_allowed(Some("W/\"abc\"")), "weak tags never match If-Range");
        assert!(!v.range_allowed(Some("\"other\"")));
        assert!(v.range_allowed(Some("Sun, 06 Nov 1994 08:49:37 GMT")));
        assert!(!v.range_allowed(Some("Sun, 06 Nov 1994 08:49:38 GMT")), "only the exact date matches");
        assert!(!v.range_allowed(Some("not a date")));
    }
}
