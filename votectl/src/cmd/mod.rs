//! One module per subcommand: a clap `Args` struct and `pub async fn run(args, ctx)`.

pub mod check;
pub mod down;
pub mod images;
pub mod logs;
pub mod render;
pub mod results;
pub mod status;
pub mod trace;
pub mod up;
pub mod vote;
