// Each test binary includes this module and may use only part of it.
#[allow(dead_code)]
pub mod structural;
