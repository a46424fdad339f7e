//! Form-encoded request bodies (`application/x-www-form-urlencoded`, as Twilio's API
//! takes), for the resources that read a few named parameters.

/// The body's pairs, in order.
pub(super) fn parse(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// The first non-empty value of `name` (Twilio treats an empty parameter as absent).
pub(super) fn get<'f>(form: &'f [(String, String)], name: &str) -> Option<&'f str> {
    form.iter()
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.as_str())
}
