//! HTTP status codes' reason phrases, for every server in the workspace that writes a status line.

/// The reason phrase of `status` for a status line (`"Unknown"` for codes no server here sends).
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::reason;

    #[test]
    fn known_codes_have_their_phrase_and_others_are_unknown() {
        assert_eq!(reason(200), "OK");
        assert_eq!(reason(206), "Partial Content");
        assert_eq!(reason(416), "Range Not Satisfiable");
        assert_eq!(reason(503), "Service Unavailable");
        assert_eq!(reason(299), "Unknown");
    }
}
