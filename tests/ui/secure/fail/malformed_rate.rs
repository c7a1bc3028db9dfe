use poem::handler;
use poem_secure::secure;

#[secure(rate = "5/mni")]
#[handler]
async fn a() {}

#[secure(rate = "0/min")]
#[handler]
async fn b() {}

#[secure(rate = "five/min")]
#[handler]
async fn c() {}

#[secure(rate = "10/min, brust = 20")]
#[handler]
async fn d() {}

#[secure(rate = "10 per minute")]
#[handler]
async fn e() {}

fn main() {}
