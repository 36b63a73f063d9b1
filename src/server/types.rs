//! `GET /types` and `GET /types/{name}`: the event types as `chronicle types` and
//! `chronicle types show` give them, from `model::fields`. They read no store.

use super::error::ApiError;
use super::params::{Params, Segment};
use crate::model::EventType;
use crate::model::fields;
use axum::Json;
use serde_json::{Value, json};

/// `GET /types`
pub async fn list(params: Params) -> Result<Json<Value>, ApiError> {
    params.finish("no parameters")?;
    let types: Vec<_> = fields::definitions().map(|d| d.summary()).collect();
    Ok(Json(json!({ "types": types })))
}

/// `GET /types/{name}`
pub async fn show(name: Segment, params: Params) -> Result<Json<Value>, ApiError> {
    params.finish("no parameters")?;
    let t = EventType::parse(&name.0).ok_or_else(|| {
        ApiError::not_found(format!(
            "no event type `{}`; {}GET /types lists them",
            name.0,
            EventType::did_you_mean(&name.0)
        ))
    })?;
    Ok(Json(json!({ "type": fields::definition(t).description() })))
}
