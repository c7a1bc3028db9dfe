use poem::handler;
use poem_secure::secure;

#[secure(scopes = "notes:read", roles = "admin")]
#[handler]
pub async fn list() {}

// Declared in `BILLING` only.
#[secure(catalogue = crate::BILLING, scopes = "billing:read")]
#[handler]
pub async fn invoices() {}
