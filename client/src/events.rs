//! Decoding Backstop events from transaction logs.
//!
//! An event is a `Program data: <base64>` line written while Backstop is the innermost
//! running program — as on SBF; the native hosts (LiteSVM, the localnet builtin) write
//! the same lines (see `backstop-native`). [`parse_logs`] follows the
//! `Program <id> invoke [n]` / `success` / `failed` frames as Anchor's `EventParser`
//! does, so data logged by another program (a CPI callee, or an outer program that
//! invoked Backstop) is never taken for a Backstop event.

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
    let backstop = backstop::ID.to_string();
    // For each running invocation: is it Backstop?
    let mut frames: Vec<bool> = Vec::new();
    let mut events = Vec::new();
    for line in logs {
        let line = line.as_ref();
        if let Some(b64) = line.strip_prefix("Program data: ") {
            if frames.last() == Some(&true) {
                let bytes = b64
                    .split(' ')
                    .next()
                    .and_then(|f| base64::engine::general_purpose::STANDARD.decode(f).ok());
                events.extend(bytes.as_deref().and_then(Event::decode));
            }
            continue;
        }
        let Some((program, what)) = line
            .strip_prefix("Program ")
            .and_then(|rest| rest.split_once(' '))
        else {
            continue;
        };
        if program.parse::<anchor_lang::prelude::Pubkey>().is_err() {
            continue;
        }
        if what.starts_with("invoke [") {
            frames.push(program == backstop);
        } else if what == "success" || what.starts_with("failed") {
            frames.pop();
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use anchor_lang::{AnchorSerialize, Discriminator};

    fn data_line<E: AnchorSerialize + Discriminator>(e: &E) -> String {
        use base64::Engine;
        let mut bytes = E::DISCRIMINATOR.to_vec();
        e.serialize(&mut bytes).unwrap();
        format!(
            "Program data: {}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
    }

    #[test]
    fn only_data_written_inside_backstop_frames_is_an_event() {
        let ev = backstop::events::OraclePriceSet {
            feed: Default::default(),
            price: 7,
            conf: 1,
            expo: -6,
            publish_time: 3,
        };
        let other = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA";
        let id = backstop::ID;
        let logs = vec![
            // Data before any frame, and inside another program's frame: not ours.
            data_line(&ev),
            format!("Program {other} invoke [1]"),
            data_line(&ev),
            format!("Program {id} invoke [2]"),
            "Program log: Instruction: SetOraclePrice".to_string(),
            data_line(&ev),
            format!("Program {other} invoke [3]"),
            data_line(&ev),
            format!("Program {other} success"),
            // Back in Backstop after the inner CPI; a log line that looks like a frame
            // line is not one.
            "Program log: failed: nothing".to_string(),
            data_line(&ev),
            format!("Program {id} success"),
            data_line(&ev),
            format!("Program {other} success"),
        ];
        let got = parse_logs(&logs);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got
            .iter()
            .all(|e| matches!(e, Event::OraclePriceSet(p) if p.price == 7)));
        // The old native form is not an event any more.
        let old = [
            format!("Program {id} invoke [1]"),
            format!("Program log: {}", data_line(&ev)),
            format!("Program {id} success"),
        ];
        assert!(parse_logs(&old).is_empty());
    }
}
