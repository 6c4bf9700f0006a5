//! The factory's customer gateway (`aws_customer_gateway`).

use super::*;

/// Reads `CustomerGateway` (see [`VpnKind::CustomerGateway`]).
pub(super) async fn observe_customer_gateway(ctx: &Context, resource: &Resource) -> anyhow::Result<Observed> {
    let name = resource.name.as_str();
    let Some(g) = customer_gateway(ctx, name).await? else { return Ok(Observed::Absent) };
    Ok(Observed::Present {
        id: g.customer_gateway_id().unwrap_or_default().to_owned(),
        attributes: attributes(vec![
            ("bgp_asn", json!(g.bgp_asn().and_then(|a| a.parse::<u64>().ok()))),
            ("ip_address", json!(g.ip_address())),
            ("tags", ec2_tags(g.tags())),
            ("type", json!(g.r#type())),
        ]),
    })
}

/// Creates `CustomerGateway`; returns its id.
pub(super) async fn create_customer_gateway(ctx: &Context, resource: &Resource) -> anyhow::Result<String> {
    let ec2 = ctx.aws.ec2();
    let name = resource.name.as_str();
    let a = &resource.attributes;
    let out = ec2
        .create_customer_gateway()
        .bgp_asn(a["bgp_asn"].as_i64().unwrap_or_default() as i32)
        .ip_address(str_attr(resource, "ip_address")?)
        .r#type(GatewayType::Ipsec1)
        .tag_specifications(tag_specification(resource, ResourceType::CustomerGateway))
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "ec2", "CreateCustomerGateway", name, e))?;
    Ok(out.customer_gateway().and_then(|g| g.customer_gateway_id()).context("no customer gateway id")?.to_owned())
}

/// Deletes `CustomerGateway` (`id` as the plan observed it).
pub(super) async fn delete_customer_gateway(ctx: &Context, change: &Change, id: &str) -> anyhow::Result<()> {
    let ec2 = ctx.aws.ec2();
    call!(ctx, change, "DeleteCustomerGateway", ec2.delete_customer_gateway().customer_gateway_id(id))
}
