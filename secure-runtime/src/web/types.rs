//! Input types for validated request bodies.

use std::{borrow::Cow, fmt, ops::Deref};

use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef},
    types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
};
use serde_json::Value;

/// A string field that accepts only a JSON string.
///
/// poem-openapi's `String` also accepts JSON numbers and booleans and turns
/// them into text (`{"title": 1}` becomes `"1"`): input of the wrong type is
/// silently accepted. `StrictString` refuses it with a 400 instead, and keeps
/// poem-openapi's length validators.
///
/// ```
/// use poem_openapi::types::ParseFromJSON;
/// use secure_runtime::StrictString;
/// assert_eq!(StrictString::parse_from_json(Some(serde_json::json!("hi"))).unwrap().as_str(), "hi");
/// assert!(StrictString::parse_from_json(Some(serde_json::json!(1))).is_err());
/// assert!(StrictString::parse_from_json(Some(serde_json::json!(true))).is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct StrictString(pub String);

impl StrictString {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The owned text.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Debug for StrictString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl Deref for StrictString {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for StrictString {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<StrictString> for String {
    fn from(s: StrictString) -> String {
        s.0
    }
}

impl Type for StrictString {
    const IS_REQUIRED: bool = true;
    type RawValueType = String;
    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        "string".into()
    }
    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema::new("string")))
    }
    fn as_raw_value(&self) -> Option<&String> {
        Some(&self.0)
    }
    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a String> + 'a> {
        Box::new(std::iter::once(&self.0))
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl ParseFromJSON for StrictString {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(s)) => Ok(StrictString(s)),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl ToJSON for StrictString {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}
