//! Decoding Backstop events from transaction logs.
//!
//! On SBF an event is logged as `Program data: <base64>`; when the program runs natively
//! (LiteSVM, the localnet validator) the host writes it as
//! `Program log: Program data: <base64>`. Both forms decode here.

use anchor_lang::{AnchorDeserialize, Discriminator};
use backstop::events::*;

macro_rules! events {
    ($($name:ident),* $(,)?) => {
        /// Every event the program emits.
        #[derive(Debug, Clone)]
        #[allow(clippy::large_enum_variant)]
        pub enum Event {
            $($name($name),)*
        }

        impl Event {
            /// Decodes one event from its bytes (discriminator first).
            pub fn decode(bytes: &[u8]) -> Option<Event> {
                $(
                    if bytes.starts_with($name::DISCRIMINATOR) {
                        let mut rest = &bytes[$name::DISCRIMINATOR.len()..];
                        return $name::deserialize(&mut rest).ok().map(Event::$name);
                    }
                )*
                None
            }

            pub fn name(&self) -> &'static str {
                match self {
                    $(Event::$name(_) => stringify!($name),)*
                }
            }
        }
    };
}

backstop::for_each_event!(events);

/// Every Backstop event in `logs`, in order.
pub fn parse_logs<S: AsRef<str>>(logs: &[S]) -> Vec<Event> {
    use base64::Engine;
    logs.iter()
        .filter_map(|line| {
            let line = line.as_ref();
            let line = line.strip_prefix("Program log: ").unwrap_or(line);
            let b64 = line.strip_prefix("Program data: ")?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.split(' ').next()?)
                .ok()?;
            Event::decode(&bytes)
        })
        .collect()
}
