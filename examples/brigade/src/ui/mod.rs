//! The web UI: one HTML page, vanilla JavaScript and CSS embedded in the binary (no front-end
//! build step), served at `/` and `/ui/*` by the same server as the REST API, which the page
//! polls for live state and uses for every change.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

/// The page.
pub const INDEX_HTML: &str = include_str!("assets/index.html");
/// Its script.
pub const APP_JS: &str = include_str!("assets/app.js");
/// Its style sheet.
pub const APP_CSS: &str = include_str!("assets/app.css");

/// The UI's routes.
pub fn router() -> axum::Router {
    axum::Router::new()
        .route("/", get(index))
        .route("/ui", get(index))
        .route("/ui/app.js", get(script))
        .route("/ui/app.css", get(style))
}

async fn index() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        INDEX_HTML,
    )
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        APP_JS,
    )
}

async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], APP_CSS)
}
