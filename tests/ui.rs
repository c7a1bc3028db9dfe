//! Compile-time behaviour of the macros: each `fail` case has a reviewed
//! `.stderr` (regenerate with `TRYBUILD=overwrite cargo test --test ui`, then
//! review every diff).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/*/pass/*.rs");
    t.compile_fail("tests/ui/*/fail/*.rs");
}
