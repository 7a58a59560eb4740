//! SQL normalization and fingerprinting (placeholder: being written).
pub fn normalize_into(sql: &str, out: &mut String) { out.clear(); out.push_str(sql.trim()); }
pub fn normalize(sql: &str) -> String { let mut s = String::new(); normalize_into(sql, &mut s); s }
pub fn fingerprint_into(sql: &str, out: &mut String) { normalize_into(sql, out) }
pub fn fingerprint(sql: &str) -> String { let mut s = String::new(); fingerprint_into(sql, &mut s); s }
