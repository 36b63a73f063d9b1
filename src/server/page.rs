//! The web page: `GET /` and its files under `/static/`, embedded in the binary from the
//! repository's `web/` folder with `include_bytes!`, so that `chronicle serve` works with
//! no internet and no files beside the binary.
//!
//! The page is plain HTML, CSS and JavaScript with no build step, plus the vendored
//! vis-timeline bundle (`web/vendor/vis-timeline/`, with its licence). It talks to the
//! JSON API only. Every answer carries a `Content-Security-Policy` that lets the page
//! load and connect to this server alone, so a page that tried to reach another host
//! would be stopped by the browser.
//!
//! Adding a file to `web/` means adding one line to [`ASSETS`]; a unit test checks that
//! every file there is listed.

use super::error::ApiError;
use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

/// One embedded file: its path under `web/`, its media type and its bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $type:literal) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $path)),
        }
    };
}

/// Every file of `web/`, served at `/static/<path>` (and `index.html` at `/`).
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!(
        "vendor/vis-timeline/vis-timeline-graph2d.min.js",
        "text/javascript; charset=utf-8"
    ),
    asset!(
        "vendor/vis-timeline/vis-timeline-graph2d.min.css",
        "text/css; charset=utf-8"
    ),
    asset!(
        "vendor/vis-timeline/LICENSE.md",
        "text/plain; charset=utf-8"
    ),
    asset!(
        "vendor/vis-timeline/LICENSE.MIT.txt",
        "text/plain; charset=utf-8"
    ),
    asset!(
        "vendor/vis-timeline/LICENSE.Apache-2.0.txt",
        "text/plain; charset=utf-8"
    ),
    asset!("vendor/vis-timeline/README.md", "text/plain; charset=utf-8"),
];

/// Same origin only: scripts, styles, fetches and the live feed. vis-timeline sets
/// inline styles on the elements it draws, hence `'unsafe-inline'` for styles (never
/// for scripts).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; object-src 'none'; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn serve(asset: &Asset) -> Response {
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            // The files change with the binary; a reload after an upgrade must see them.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        asset.body,
    )
        .into_response()
}

fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// `GET /`: the page.
pub async fn index() -> Response {
    serve(find("index.html").expect("index.html is in ASSETS"))
}

/// `GET /static/{*path}`: a file of the page.
pub async fn file(Path(path): Path<String>) -> Result<Response, ApiError> {
    find(&path)
        .map(serve)
        .ok_or_else(|| ApiError::not_found(format!("the page has no file `{path}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file under `web/` is embedded, and nothing is listed that is not there.
    #[test]
    fn every_file_of_web_is_embedded() {
        fn walk(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, base, out);
                } else {
                    let relative = path.strip_prefix(base).unwrap();
                    out.push(relative.to_str().unwrap().replace('\\', "/"));
                }
            }
        }
        let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
        let mut found = Vec::new();
        walk(&web, &web, &mut found);
        found.sort();
        let mut listed: Vec<String> = ASSETS.iter().map(|a| a.path.to_owned()).collect();
        listed.sort();
        assert_eq!(found, listed);
    }
}
