//! OCSP without nginx: response checks, the responder client's URL,
//! request and response parser, the refresh schedule.

pub mod responder;
pub mod response;
pub mod schedule;
