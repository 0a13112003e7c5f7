// Tests: concurrency (being written).
#[allow(unused_imports)]
use crate::helpers::TestApp;
