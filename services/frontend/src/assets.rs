//! The embedded page: HTML, CSS and plain JavaScript compiled into the binary, with no build step.
//!
//! Invariants: every asset has a strong ETag derived from its bytes (SHA-256), honoured by
//! `If-None-Match` with a 304; the HTML pages reference static files as `/static/NAME?v=VERSION`, where
//! VERSION is the asset's own hash, so a versioned URL may be cached for a year (`immutable`) while the
//! HTML itself and unversioned URLs are always revalidated (`no-cache`). A new binary therefore never
//! serves a new page with old scripts.

use std::sync::LazyLock;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// File name under `/static/`.
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Hex prefix of the SHA-256 of `body`: the `v` query of versioned URLs.
    pub version: String,
    /// `"<version>"`: a strong validator.
    pub etag: HeaderValue,
}

impl Asset {
    fn new(name: &'static str, content_type: &'static str, body: Vec<u8>) -> Self {
        let digest = Sha256::digest(&body);
        let version: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
        let etag = HeaderValue::try_from(format!("\"{version}\""))
            .unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
        Self {
            name,
            content_type,
            body,
            version,
            etag,
        }
    }

    /// The versioned URL of this asset.
    pub fn url(&self) -> String {
        format!("/static/{}?v={}", self.name, self.version)
    }
}

/// `Cache-Control` of versioned static URLs: the content behind them never changes.
pub const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of pages and unversioned URLs: cache, but revalidate (cheap thanks to the ETag).
pub const CACHE_REVALIDATE: &str = "no-cache";

const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// Every embedded file, built once.
#[derive(Debug)]
pub struct Assets {
    /// Files under `/static/`.
    pub files: Vec<Asset>,
    /// The voting page served at `/`.
    pub index: Asset,
    /// The body of every HTML 404.
    pub not_found: Asset,
}

impl Assets {
    fn build() -> Self {
        let files = vec![
            Asset::new("app.css", CSS, include_bytes!("../static/app.css").to_vec()),
            Asset::new("app.js", JS, include_bytes!("../static/app.js").to_vec()),
            Asset::new(
                "favicon.svg",
                SVG,
                include_bytes!("../static/favicon.svg").to_vec(),
            ),
        ];
        let render = |template: &str| -> Vec<u8> {
            files
                .iter()
                .fold(template.to_owned(), |page, asset| {
                    page.replace(&format!("{{{{{}}}}}", asset.name), &asset.url())
                })
                .into_bytes()
        };
        let index = Asset::new(
            "index.html",
            HTML,
            render(include_str!("../static/index.html")),
        );
        let not_found = Asset::new("404.html", HTML, render(include_str!("../static/404.html")));
        Self {
            files,
            index,
            not_found,
        }
    }

    /// The file `/static/<name>`, if embedded.
    pub fn file(&self, name: &str) -> Option<&Asset> {
        self.files.iter().find(|a| a.name == name)
    }
}

/// The embedded files (hashed on first use).
pub fn assets() -> &'static Assets {
    static ASSETS: LazyLock<Assets> = LazyLock::new(Assets::build);
    &ASSETS
}

/// Serves `asset` with `status`: 304 when `If-None-Match` matches its ETag (for a 200), otherwise the
/// body, each time with its ETag and `cache_control`.
pub fn serve(
    asset: &Asset,
    status: StatusCode,
    request: &HeaderMap,
    cache_control: &'static str,
) -> Response {
    let cache = [
        (header::ETAG, asset.etag.clone()),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control),
        ),
    ];
    if status == StatusCode::OK && if_none_match(request, &asset.etag) {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (
        status,
        cache,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        )],
        Body::from(asset.body.clone()),
    )
        .into_response()
}

/// Whether `If-None-Match` lists `etag` (weak comparison, as RFC 9110 prescribes for this header) or
/// is `*`.
pub fn if_none_match(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = strip_weak(etag.as_bytes());
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || strip_weak(tag.as_bytes()) == ours)
}

fn strip_weak(tag: &[u8]) -> &[u8] {
    tag.strip_prefix(b"W/").unwrap_or(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_reference_every_static_file_by_version() {
        let a = assets();
        let index = String::from_utf8(a.index.body.clone()).unwrap();
        for file in &a.files {
            assert!(index.contains(&file.url()), "index lacks {}", file.url());
        }
        assert!(
            !index.contains("{{"),
            "unrendered placeholder in index.html"
        );
        let not_found = String::from_utf8(a.not_found.body.clone()).unwrap();
        assert!(not_found.contains(&a.file("app.css").unwrap().url()));
        assert!(!not_found.contains("{{"));
    }

    #[test]
    fn pages_have_no_inline_script_or_style() {
        // The CSP forbids them; the browser would silently ignore them.
        let a = assets();
        for page in [&a.index, &a.not_found] {
            let html = String::from_utf8(page.body.clone()).unwrap();
            assert!(!html.contains("<style"), "{}", page.name);
            assert!(!html.contains("style="), "{}", page.name);
            assert!(!has_event_handler(&html), "inline handler in {}", page.name);
            for script in html.split("<script").skip(1) {
                assert!(
                    script.trim_start().starts_with("src=") || script.contains(" src=\"/static/"),
                    "inline script in {}",
                    page.name
                );
                assert!(script.contains("></script>"), "{}", page.name);
            }
        }
    }

    /// Whether `html` has an attribute like ` onclick=`.
    fn has_event_handler(html: &str) -> bool {
        html.match_indices(" on").any(|(i, _)| {
            let rest = &html[i + 3..];
            let name_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            name_len > 0 && rest[name_len..].starts_with('=')
        })
    }

    #[test]
    fn etags_differ_per_file_and_are_quoted() {
        let a = assets();
        let mut tags: Vec<_> = a.files.iter().map(|f| f.etag.clone()).collect();
        tags.push(a.index.etag.clone());
        for t in &tags {
            let s = t.to_str().unwrap();
            assert!(
                s.starts_with('"') && s.ends_with('"') && s.len() == 22,
                "{s}"
            );
        }
        tags.sort_by(|x, y| x.as_bytes().cmp(y.as_bytes()));
        tags.dedup();
        assert_eq!(tags.len(), a.files.len() + 1);
    }

    #[test]
    fn if_none_match_forms() {
        let etag = HeaderValue::from_static("\"abc\"");
        let check = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
            if_none_match(&h, &etag)
        };
        assert!(check("\"abc\""));
        assert!(check("W/\"abc\""));
        assert!(check("\"x\", \"abc\""));
        assert!(check("*"));
        assert!(!check("\"abd\""));
        assert!(!check("abc"));
        assert!(!if_none_match(&HeaderMap::new(), &etag));
    }
}
