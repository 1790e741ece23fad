//! Integration tests of the gateway over real sockets: the real server on an
//! ephemeral port, a mock app backend (a real HTTP server in the test), and
//! real WebSocket clients. One module per area; helpers in `support`.

mod support;

mod admin;
mod connect;
mod health;
mod isolation;
mod jwks;
mod jwt;
mod limits;
mod longpoll;
mod presence;
mod protocol;
mod schema_rules;
mod server_api;
mod slow_consumer;
mod tls;
mod webhooks;
