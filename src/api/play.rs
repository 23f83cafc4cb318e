//! `POST /v1/calls/{callId}/play` `{"audio": "<file or http(s) URL>",
//! "then": "hold" | "hangup"}`: plays one prompt to a held caller in
//! place of the music. Answers as soon as it starts playing; when it has
//! played, the call's timeline and events get `call.play_finished`, then
//! the music resumes where it stopped (`hold`) or the call ends (`hangup`,
//! reason `api_hangup`).

use super::bad_request::{BadRequest, FieldError};
use super::calls::live;
use super::error::ApiError;
use super::reply::json;
use super::state::Api;
use crate::call::{PlayThen, State};
use crate::media::Prompt;
use serde_json::Value;
use warp::http::StatusCode;
use warp::hyper::{Body, Response};

/// A play request's body, checked.
#[derive(Debug, PartialEq)]
pub struct PlayRequest {
    pub audio: String,
    pub then: PlayThen,
}

pub fn parse(body: &[u8]) -> Result<PlayRequest, BadRequest> {
    let obj = BadRequest::object(body)?;
    let audio = match obj.get("audio") {
        None | Some(Value::Null) => return Err(FieldError::rule("audio", "required").into()),
        Some(Value::String(s)) if s.trim().is_empty() => {
            return Err(FieldError::rule("audio", "must not be empty").into());
        }
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(FieldError::rule("audio", "must be a string").into()),
    };
    let then = match obj.get("then") {
        None | Some(Value::Null) => PlayThen::Hold,
        Some(Value::String(s)) if s == "hold" => PlayThen::Hold,
        Some(Value::String(s)) if s == "hangup" => PlayThen::Hangup,
        Some(_) => {
            return Err(FieldError::rule("then", "must be \"hold\" or \"hangup\"").into());
        }
    };
    Ok(PlayRequest { audio, then })
}

pub async fn handle(api: &Api, id: &str, body: &[u8]) -> Result<Response<Body>, ApiError> {
    let request = parse(body)?;
    let call = live(api, id)?;
    // Refused before any fetch when the call is not held; the driver
    // checks again when the prompt is handed to it.
    let state = call.snapshot().state;
    if state != State::Held {
        return Err(ApiError::CallIs(state.name()));
    }
    let clip = api.audio.get(&request.audio).await?;
    let duration_ms = u64::from(clip.frames()) * 20;
    let prompt = Prompt::new(vec![clip]);
    call.play(prompt, shown(&request.audio), request.then)
        .await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "status": "playing",
            "callId": id,
            "audio": request.audio,
            "then": request.then.name(),
            "durationMs": duration_ms,
        }),
    ))
}

/// `audio` as the timeline, the events and the records show it: a URL
/// without its query or fragment, where signed URLs carry their tokens.
fn shown(audio: &str) -> String {
    let lower = audio.to_ascii_lowercase();
    let url = lower.starts_with("http://") || lower.starts_with("https://");
    match audio.find(['?', '#']) {
        Some(cut) if url => audio[..cut].to_string(),
        _ => audio.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_s_query_is_not_shown() {
        assert_eq!(
            shown("https://cdn.example.com/a.mp3?X-Amz-Signature=abc#t=1"),
            "https://cdn.example.com/a.mp3"
        );
        assert_eq!(shown("/var/prompts/a?b.wav"), "/var/prompts/a?b.wav");
    }

    #[test]
    fn bodies_are_checked_field_by_field() {
        let ok = parse(br#"{"audio": "a.wav"}"#).unwrap();
        assert_eq!(
            ok,
            PlayRequest {
                audio: "a.wav".into(),
                then: PlayThen::Hold
            }
        );
        let hangup = parse(br#"{"audio": "http://h/a.mp3", "then": "hangup"}"#).unwrap();
        assert_eq!(hangup.then, PlayThen::Hangup);
        let err = |b: &[u8]| parse(b).unwrap_err().to_string();
        assert_eq!(err(b"{}"), "audio: required");
        assert_eq!(err(br#"{"audio": 3}"#), "audio: must be a string");
        assert_eq!(err(br#"{"audio": " "}"#), "audio: must not be empty");
        assert_eq!(
            err(br#"{"audio": "a.wav", "then": "later"}"#),
            "then: must be \"hold\" or \"hangup\""
        );
        assert_eq!(err(b"[]"), "body must be a JSON object");
    }
}
