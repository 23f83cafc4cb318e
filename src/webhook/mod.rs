//! Webhooks to the customer's app: signing (pure functions in `sign`),
//! secrets (`secret`: decode, generate once, keep in `state_dir`),
//! delivery with bounded retries (`deliver`) and the bodies themselves
//! (`messages`).
//!
//! Below `call` in the layering: it imports only `config` (the one secret
//! decoder), so every layer above can post webhooks.

mod deliver;
pub mod messages;
mod secret;
mod sign;

pub use deliver::{
    Attempt, AttemptError, AttemptOutcome, Delivery, ReadError, RetryPolicy, Sender, read_capped,
};
pub use secret::{
    BadSecret, MIN_SECRET_BYTES, SecretError, decode_secret, load_or_create_secret, parse_secret,
};
pub use sign::{SignedHeaders, SigningKeys, pinless_signature, sign, standard_signature};
