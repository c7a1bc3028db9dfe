//! The server of the request-overhead benchmark (`scripts/bench-overhead.sh`);
//! its routes are described in `app.rs`.
//!
//! Prints `TOKEN <jwt>` on its first line, then serves on `BENCH_ADDR`.

mod app;

use poem::{listener::TcpListener, Server};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let security = app::security();
    println!("TOKEN {}", app::bearer_token(&security));
    let addr = std::env::var("BENCH_ADDR").unwrap_or_else(|_| "127.0.0.1:3999".into());
    Server::new(TcpListener::bind(addr))
        .run(app::app(&security))
        .await?;
    Ok(())
}
