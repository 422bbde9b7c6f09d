//! The preset zlib dictionary of SPDY/3 header compression (draft 3, section 2.6.10.1).
//!
//! Both peers prime their zlib streams with it, so it has to be byte-exact: Go's reader checks
//! the dictionary's Adler-32 against the id in the zlib header and refuses the stream otherwise.
//! The dictionary is a run of u32-length-prefixed header names and values followed by a block
//! of raw text; it is rebuilt from those parts rather than spelled out as 1423 hex bytes.

use std::sync::LazyLock;

/// Names and values that the dictionary lists with a 4-byte big-endian length prefix.
const PREFIXED_WORDS: &[&str] = &[
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

/// The raw text that ends the dictionary (status codes, reason phrases, dates, media types).
const RAW_TAIL: &str = concat!(
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
    "203 Non-Authoritative Information",
    "204 No Content",
    "301 Moved Permanently",
    "400 Bad Request",
    "401 Unauthorized",
    "403 Forbidden",
    "404 Not Found",
    "500 Internal Server Error",
    "501 Not Implemented",
    "503 Service Unavailable",
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT",
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,",
    "text/plain,text/javascript,public",
    "private",
    "max-age=",
    "gzip,deflate,sdch",
    "charset=utf-8",
    "charset=iso-8859-1,utf-,*,enq=0.",
);

static DICTIONARY: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let mut dictionary = Vec::with_capacity(1423);
    for word in PREFIXED_WORDS {
        let len = u32::try_from(word.len()).expect("dictionary words are short");
        dictionary.extend_from_slice(&len.to_be_bytes());
        dictionary.extend_from_slice(word.as_bytes());
    }
    dictionary.extend_from_slice(RAW_TAIL.as_bytes());
    dictionary
});

/// The SPDY/3 header compression dictionary.
pub(super) fn header_dictionary() -> &'static [u8] {
    &DICTIONARY
}

#[cfg(test)]
mod tests {
    use super::header_dictionary;

    #[test]
    fn has_the_size_the_spec_gives() {
        assert_eq!(header_dictionary().len(), 1423);
        assert!(header_dictionary().starts_with(b"\0\0\0\x07options\0\0\0\x04head"));
        assert!(header_dictionary().ends_with(b"utf-,*,enq=0."));
    }
}
