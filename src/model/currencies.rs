//! ISO 4217 currency codes: the current ones, and those the euro, redenominations and
//! later changes replaced since 1999, which an archive still quotes (`DEM`, `TRL`,
//! `HRK`). A new
//! event's sum of money must name one of them; stored and exported events are read as
//! they are, so a code accepted before this list stays readable.

/// The codes, sorted so that lookups can binary-search them.
pub const CODES: &[&str] = &[
    "ADP", "AED", "AFA", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "ATS", "AUD", "AWG", "AZM",
    "AZN", "BAM", "BBD", "BDT", "BEF", "BGL", "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BOV",
    "BRL", "BSD", "BTN", "BWP", "BYN", "BYR", "BZD", "CAD", "CDF", "CHE", "CHF", "CHW", "CLF",
    "CLP", "CNY", "COP", "COU", "CRC", "CSD", "CUC", "CUP", "CVE", "CYP", "CZK", "DEM", "DJF",
    "DKK", "DOP", "DZD", "ECS", "EEK", "EGP", "ERN", "ESP", "ETB", "EUR", "FIM", "FJD", "FKP",
    "FRF", "GBP", "GEL", "GHC", "GHS", "GIP", "GMD", "GNF", "GRD", "GTQ", "GYD", "HKD", "HNL",
    "HRK", "HTG", "HUF", "IDR", "IEP", "ILS", "INR", "IQD", "IRR", "ISK", "ITL", "JMD", "JOD",
    "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR",
    "LRD", "LSL", "LTL", "LUF", "LVL", "LYD", "MAD", "MCF", "MDL", "MGA", "MGF", "MKD", "MMK",
    "MNT", "MOP", "MRO", "MRU", "MTL", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZM", "MZN",
    "NAD", "NGN", "NIO", "NLG", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR",
    "PLN", "PTE", "PYG", "QAR", "ROL", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDD",
    "SDG", "SEK", "SGD", "SHP", "SIT", "SKK", "SLE", "SLL", "SML", "SOS", "SRD", "SRG", "SSP",
    "STD", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMM", "TMT", "TND", "TOP", "TRL", "TRY",
    "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VAL", "VEB",
    "VED", "VEF", "VES", "VND", "VUV", "WST", "XAF", "XAG", "XAU", "XBA", "XBB", "XBC", "XBD",
    "XCD", "XCG", "XDR", "XEU", "XOF", "XPD", "XPF", "XPT", "XSU", "XUA", "YER", "YUM", "ZAR",
    "ZMK", "ZMW", "ZWD", "ZWG", "ZWL", "ZWN", "ZWR",
];

/// Whether `code` is one of the codes above.
pub fn is_currency(code: &str) -> bool {
    CODES.binary_search(&code).is_ok()
}

/// Why `code` is not taken, with the code it most likely meant (`UDS`: USD). Every
/// code replaced since 1999 is in the list, so a hint never sends an old currency's
/// amount to its successor's (TRL is TRL, not TRY a million times smaller).
pub fn not_a_currency(code: &str) -> String {
    let hint = match closest(code) {
        Some(c) => format!("did you mean {c}?"),
        None => "give one like USD, EUR or JPY".into(),
    };
    format!("`{code}` is not an ISO 4217 currency code; {hint}")
}

/// The code `code` most likely meant, in any case: one edit away (`UDS`, `EURO`, `eur`).
pub fn closest(code: &str) -> Option<&'static str> {
    // Only a text of at most four letters is one edit from a code.
    if code.chars().nth(4).is_some() {
        return None;
    }
    let code = code.to_uppercase();
    CODES
        .iter()
        .map(|c| (strsim::osa_distance(c, &code), *c))
        .filter(|(d, _)| *d <= 1)
        .min()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codes_are_sorted_and_a_typo_names_the_likely_one() {
        assert!(CODES.windows(2).all(|w| w[0] < w[1]));
        assert!(is_currency("USD") && is_currency("DEM") && !is_currency("UDS"));
        assert!(is_currency("TRL") && is_currency("ROL") && is_currency("XSU"));
        assert!(not_a_currency("UDS").contains("did you mean USD?"));
        assert!(!not_a_currency("QQQ").contains("did you mean"));
        assert_eq!(closest("eur"), Some("EUR"));
        assert_eq!(closest("EURO"), Some("EUR"));
    }
}
