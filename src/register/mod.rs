//! Registration to providers and PBXs (`[[registration]]`): each binding
//! is a sans-IO machine (`machine`) driven by a thin task (`task`) that
//! sends its REGISTERs through the SIP stack; `Registrations` is the set a
//! node keeps, for the API, metrics and a stop.

pub mod machine;
