use napi_derive::napi;

#[napi]
pub fn noop() {}

/// Normalizes a SQL statement: comments stripped, whitespace collapsed, keywords uppercased.
#[napi]
pub fn normalize_sql(sql: String) -> String {
  havoc_core::sql::normalize(&sql)
}

/// Like `normalizeSql`, with every literal replaced by `?`.
#[napi]
pub fn fingerprint_sql(sql: String) -> String {
  havoc_core::sql::fingerprint(&sql)
}
