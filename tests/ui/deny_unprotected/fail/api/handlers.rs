// Read by `../file_module_inside.rs`: an unprotected handler in a file module.
#[poem::handler]
pub async fn leak() -> &'static str {
    "leak"
}
