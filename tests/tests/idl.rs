//! What the committed IDL alone must tell a client (issue 16): an Anchor client resolves
//! every account it can from seeds and relations, so the exchange's two vaults must carry
//! one or the other wherever they appear.

#[test]
fn vaults_are_resolvable_from_the_idl_alone() {
    let idl: serde_json::Value =
        serde_json::from_str(include_str!("../../idl/backstop.json")).expect("IDL");
    let mut seen = 0;
    for ix in idl["instructions"].as_array().expect("instructions") {
        for a in ix["accounts"].as_array().expect("accounts") {
            let name = a["name"].as_str().unwrap_or_default();
            if name == "vault" || name == "insurance_vault" {
                seen += 1;
                let relation = a["relations"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|x| x == "exchange"));
                assert!(
                    relation || a.get("pda").is_some(),
                    "{}.{name} has neither seeds nor a relation to the exchange",
                    ix["name"]
                );
            }
        }
    }
    assert!(seen >= 24, "{seen} vault accounts");
}
