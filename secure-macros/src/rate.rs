//! The rate arguments: `rate = "N/unit[, burst = M]"` read into numbers,
//! `rate_key` and `rate_group`.

use syn::{spanned::Spanned as _, Expr};

use crate::{
    errors::Errors,
    model::{is_token, lit_str, Rate, RateKey, Spanned},
};

const RATE_UNITS: &str = "s, sec, second, m, min, minute, h, hour, d, day";

pub(crate) fn rate(e: &Expr, errors: &mut Errors) -> Option<Rate> {
    let Some(s) = lit_str(e) else {
        errors.at(
            e.span(),
            "expected a rate string such as \"5/min\" or \"10/min, burst = 20\"",
        );
        return None;
    };
    match parse_rate(&s.value()) {
        Ok(r) => Some(r),
        Err(msg) => {
            errors.at(s.span(), msg);
            None
        }
    }
}

/// `N/unit` with an optional `, burst = M`.
pub(crate) fn parse_rate(text: &str) -> Result<Rate, String> {
    let bad = |why: String| format!("invalid rate `{text}`: {why}");
    let (main, rest) = match text.split_once(',') {
        Some((m, r)) => (m, Some(r)),
        None => (text, None),
    };
    let Some((count, unit)) = main.split_once('/') else {
        return Err(bad("write it as `count/unit`, e.g. \"5/min\"".into()));
    };
    let count: u32 = match count.trim().parse() {
        Ok(0) => return Err(bad("the count must be at least 1".into())),
        Ok(n) => n,
        Err(_) => {
            return Err(bad(format!(
                "`{}` is not a whole number of requests",
                count.trim()
            )))
        }
    };
    let period_secs = match unit.trim() {
        "s" | "sec" | "second" => 1,
        "m" | "min" | "minute" => 60,
        "h" | "hour" => 3600,
        "d" | "day" => 86_400,
        other => {
            return Err(bad(format!(
                "unknown unit `{other}`; use one of {RATE_UNITS}"
            )))
        }
    };
    if u64::from(count) > u64::from(period_secs) * 1_000_000_000 {
        return Err(bad(
            "more than one request per nanosecond cannot be limited".into(),
        ));
    }
    let burst = match rest {
        None => None,
        Some(r) => {
            let Some((k, v)) = r.split_once('=') else {
                return Err(bad("after the comma write `burst = N`".into()));
            };
            if k.trim() != "burst" {
                return Err(bad(format!(
                    "unknown option `{}`; the only option is `burst = N`",
                    k.trim()
                )));
            }
            match v.trim().parse::<u32>() {
                Ok(0) => return Err(bad("the burst must be at least 1".into())),
                Ok(n) => Some(n),
                Err(_) => return Err(bad(format!("`{}` is not a whole number", v.trim()))),
            }
        }
    };
    Ok(Rate {
        count,
        period_secs,
        burst,
    })
}

pub(crate) fn rate_key(e: &Expr, errors: &mut Errors) -> Option<RateKey> {
    let Expr::Path(p) = e else {
        errors.at(e.span(), "expected `ip`, `user`, `api_key`, `ip_user` or a path to a `fn(&Request, Option<&Principal>) -> String`");
        return None;
    };
    if let Some(id) = p.path.get_ident() {
        match id.to_string().as_str() {
            "ip" => return Some(RateKey::Ip),
            "user" => return Some(RateKey::User),
            "api_key" => return Some(RateKey::ApiKey),
            "ip_user" => return Some(RateKey::IpUser),
            _ => {}
        }
    }
    Some(RateKey::Custom(p.path.clone()))
}

pub(crate) fn rate_group(e: &Expr, errors: &mut Errors) -> Option<Spanned<String>> {
    match lit_str(e) {
        Some(s) if is_token(&s.value()) => Some(Spanned::new(s.value(), s.span())),
        Some(s) => {
            errors.at(
                s.span(),
                "a rate group is a non-empty name without spaces, e.g. \"login\"",
            );
            None
        }
        None => {
            errors.at(
                e.span(),
                "expected a group name string, e.g. `rate_group = \"login\"`",
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::parse_rate;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Any text: an answer (a rate or a message naming the input), never a panic.
        #[test]
        fn any_rate_text_parses_or_explains(text in "\\PC{0,40}") {
            if let Err(msg) = parse_rate(&text) {
                prop_assert!(msg.starts_with("invalid rate `"));
            }
        }

        /// Every well-formed rate parses to exactly its numbers.
        #[test]
        fn well_formed_rates_parse_exactly(
            count in 1u32..=1_000_000,
            unit in prop::sample::select(vec![("s", 1u32), ("sec", 1), ("second", 1), ("m", 60), ("min", 60),
                ("minute", 60), ("h", 3600), ("hour", 3600), ("d", 86_400), ("day", 86_400)]),
            burst in prop::option::of(1u32..=10_000),
            spaces in 0usize..3,
        ) {
            let pad = " ".repeat(spaces);
            let mut text = format!("{count}{pad}/{pad}{}", unit.0);
            if let Some(b) = burst {
                text.push_str(&format!(",{pad}burst{pad}={pad}{b}"));
            }
            let r = parse_rate(&text).map_err(TestCaseError::fail)?;
            prop_assert_eq!((r.count, r.period_secs, r.burst), (count, unit.1, burst));
        }
    }

    #[test]
    fn zero_and_unknown_units_are_refused() {
        assert!(parse_rate("0/min").is_err());
        assert!(parse_rate("5/fortnight").is_err());
        assert!(parse_rate("5/min, burst = 0").is_err());
        assert!(parse_rate("5/min, bust = 2").is_err());
        assert!(parse_rate("4294967296/s").is_err());
    }
}
