//! Webhooks to the customer's app: signing (pure functions in `sign`),
//! secrets (`secret`: decode, generate once, keep in `state_dir`) and
//! delivery with bounded retries (`deliver`).

mod deliver;
mod secret;
mod sign;

pub use deliver::{Attempt, AttemptOutcome, Delivery, RetryPolicy, Sender, unix_ms};
pub use secret::{SecretError, decode_secret, load_or_create_secret};
pub use sign::{SignedHeaders, SigningKeys, pinless_signature, sign, standard_signature};
