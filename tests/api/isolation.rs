// Tests: isolation (being written).
#[allow(unused_imports)]
use crate::helpers::TestApp;
