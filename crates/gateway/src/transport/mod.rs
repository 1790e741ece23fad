//! Client transports: accepting a connection (the checks every transport
//! shares, in [`connect`]), then moving frames between the socket and the
//! session. WebSocket lives in [`websocket`], long-poll in [`longpoll`]; transports decide nothing about
//! topics.

pub mod client_ip;
pub mod connect;
pub mod longpoll;
pub mod longpoll_body;
pub mod query;
pub mod websocket;

pub use connect::{admit, Admitted, ConnectRequest, Refusal};
