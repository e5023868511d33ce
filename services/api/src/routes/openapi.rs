//! `GET /api/openapi.json`: the OpenAPI 3 document, generated from the handlers' annotations and the
//! contract's types. A test compares its paths and methods with the routes the router really serves.

use std::sync::LazyLock;

use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use utoipa::OpenApi;
use vote_contract::http::{
    ErrorBody, HealthResponse, OptionResult, ReadyResponse, ResultsResponse, VoteRequest,
    VoteResponse, path,
};

use super::{ops, results, vote};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "vote-api",
        description = "Accepts votes into the Redis stream `votes` and serves the counts from PostgreSQL."
    ),
    paths(
        vote::vote,
        results::results,
        results::results_stream,
        ops::health,
        ops::ready,
        ops::metrics,
        openapi,
    ),
    components(schemas(
        VoteRequest,
        VoteResponse,
        ResultsResponse,
        OptionResult,
        ErrorBody,
        HealthResponse,
        ReadyResponse
    )),
    tags(
        (name = "votes", description = "Casting votes"),
        (name = "results", description = "Reading the counts"),
        (name = "operations", description = "Probes, metrics and this document"),
    )
)]
pub struct ApiDoc;

static DOCUMENT: LazyLock<String> =
    LazyLock::new(|| ApiDoc::openapi().to_json().unwrap_or_default());

/// This document.
#[utoipa::path(
    get,
    path = path::OPENAPI,
    tag = "operations",
    responses((status = 200, description = "OpenAPI 3 document", content_type = "application/json", body = Object))
)]
pub async fn openapi() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        DOCUMENT.as_str(),
    )
}
