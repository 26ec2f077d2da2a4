//! `--access-key`, `--secret-key` and `--security-token` (or `PETREL_ACCESS_KEY`,
//! `PETREL_SECRET_KEY`, `PETREL_SECURITY_TOKEN`): the plain-ACL account the client commands
//! (send, consume, admin, bench) sign every request with. Never prints a secret.

use anyhow::bail;
use petrel_client::Credentials;

pub const ACCESS_KEY_ENV: &str = "PETREL_ACCESS_KEY";
pub const SECRET_KEY_ENV: &str = "PETREL_SECRET_KEY";
pub const SECURITY_TOKEN_ENV: &str = "PETREL_SECURITY_TOKEN";

#[derive(clap::Args, Debug, Clone, Default)]
pub struct AclArgs {
    /// Access key of a plain_acl.yml account, for a broker with aclEnable: every request is
    /// signed as the Java client's AclClientRPCHook does [env: PETREL_ACCESS_KEY].
    #[arg(long, global = true)]
    pub access_key: Option<String>,
    /// The account's secret key [env: PETREL_SECRET_KEY].
    #[arg(long, global = true)]
    pub secret_key: Option<String>,
    /// Optional security token, sent and signed as SecurityToken [env: PETREL_SECURITY_TOKEN].
    #[arg(long, global = true)]
    pub security_token: Option<String>,
}

impl AclArgs {
    /// The credentials from the flags, else from the environment; `None` when neither names an
    /// access key and a secret key, an error when only one of the two is given.
    pub fn credentials(&self) -> anyhow::Result<Option<Credentials>> {
        self.resolve(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    fn resolve(&self, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<Credentials>> {
        let access_key = self.access_key.clone().or_else(|| env(ACCESS_KEY_ENV));
        let secret_key = self.secret_key.clone().or_else(|| env(SECRET_KEY_ENV));
        let security_token = self
            .security_token
            .clone()
            .or_else(|| env(SECURITY_TOKEN_ENV));
        match (access_key, secret_key) {
            (Some(ak), Some(sk)) => {
                let credentials = Credentials::new(ak, sk);
                Ok(Some(match security_token {
                    Some(token) => credentials.with_security_token(token),
                    None => credentials,
                }))
            }
            (None, None) if security_token.is_none() => Ok(None),
            (None, None) => bail!("--security-token needs --access-key and --secret-key"),
            (Some(_), None) => bail!("--access-key needs --secret-key (or {SECRET_KEY_ENV})"),
            (None, Some(_)) => bail!("--secret-key needs --access-key (or {ACCESS_KEY_ENV})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn flags_win_over_the_environment() {
        let args = AclArgs {
            access_key: Some("ak_flag".into()),
            secret_key: Some("sk_flag".into()),
            security_token: None,
        };
        let env = |name: &str| Some(format!("{name}-value"));
        let c = args.resolve(env).unwrap().unwrap();
        assert_eq!(c.access_key, "ak_flag");
        assert_eq!(c.secret_key, "sk_flag");
        assert_eq!(
            c.security_token.as_deref(),
            Some("PETREL_SECURITY_TOKEN-value")
        );
    }

    #[test]
    fn the_environment_fills_in_missing_flags() {
        let env = |name: &str| match name {
            ACCESS_KEY_ENV => Some("ak_env".to_owned()),
            SECRET_KEY_ENV => Some("sk_env".to_owned()),
            _ => None,
        };
        let c = AclArgs::default().resolve(env).unwrap().unwrap();
        assert_eq!(c, Credentials::new("ak_env", "sk_env"));
    }

    #[test]
    fn no_keys_sign_nothing_and_half_a_pair_is_an_error() {
        assert!(AclArgs::default().resolve(no_env).unwrap().is_none());
        let only_ak = AclArgs {
            access_key: Some("ak".into()),
            ..AclArgs::default()
        };
        let e = only_ak.resolve(no_env).unwrap_err().to_string();
        assert!(e.contains("--secret-key"), "{e}");
        let only_sk = AclArgs {
            secret_key: Some("sk-hidden".into()),
            ..AclArgs::default()
        };
        let e = only_sk.resolve(no_env).unwrap_err().to_string();
        assert!(
            e.contains("--access-key") && !e.contains("sk-hidden"),
            "{e}"
        );
    }
}
