//! HTTP/1.1 on the wire, as little of it as a HEAD check needs: framing the request, parsing the response
//! head with httparse, and resolving redirect targets. No IO here: bytes in, decisions out, so the fuzz
//! targets and unit tests drive it directly.

mod redirect;
mod request;
mod response;

pub use redirect::{resolve_location, RedirectError};
pub use request::write_head_request;
pub use response::{parse_response_head, partial_status_code, HeadError, ResponseHead};
