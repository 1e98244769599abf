//! The UI's static files, compiled into the binary: one stylesheet and one script, both
//! written for Warden (no third-party asset, nothing fetched at run time). Served with their
//! content type, `nosniff`, and a short cache (they change only with the binary).

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const STYLE: &str = include_str!("../../../assets/warden.css");
const SCRIPT: &str = include_str!("../../../assets/warden.js");

pub async fn serve(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "warden.css" => (STYLE, "text/css; charset=utf-8"),
        "warden.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    response
}
