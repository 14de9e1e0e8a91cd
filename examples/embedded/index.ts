// The components inside a larger stack that brings its own VPC, subnet and DNS zone.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { Gateway, Service } from "sglang-gateway";

export function main() {
    const config = new pulumi.Config();
    const vpc = new aws.ec2.Vpc("platform", { cidrBlock: "10.40.0.0/16", enableDnsHostnames: true });
    const subnet = new aws.ec2.Subnet("platform-gpu", { vpcId: vpc.id, cidrBlock: "10.40.1.0/24", mapPublicIpOnLaunch: true });
    // A public subnet: the gateway's elastic IP needs a route to an internet gateway.
    const internet = new aws.ec2.InternetGateway("platform", { vpcId: vpc.id });
    const routes = new aws.ec2.RouteTable("platform-public", { vpcId: vpc.id, routes: [{ cidrBlock: "0.0.0.0/0", gatewayId: internet.id }] });
    const publicRoute = new aws.ec2.RouteTableAssociation("platform-gpu", { subnetId: subnet.id, routeTableId: routes.id });
    const zone = new aws.route53.Zone("platform", { name: "llm.example.com" });

    const gateway = new Gateway("llm", {
        domain: "llm.example.com",
        backend: "aws",
        vpcId: vpc.id,
        // The subnet's id once its internet route is associated: the dependency travels with the value, so every
        // instance that uses it waits for the route (the elastic IP and the setup over SSH need it).
        subnetId: pulumi.all([subnet.id, publicRoute.id]).apply(([id]) => id),
        sshSourceCidrs: ["0.0.0.0/0"],
        tags: { stack: pulumi.getStack() },
        zoneId: zone.zoneId,
        privateKey: config.requireSecret("sshPrivateKey"),
        router: { type: "sglang", policy: "cache_aware" },
    });

    const chat = new Service("chat", {
        gateway,
        port: 8000,
        model: "meta-llama/Llama-3.2-3B-Instruct",
        image: "lmsysorg/sglang:latest",
        commands: ["python -m sglang.launch_server --model-path $MODEL --host 0.0.0.0 --port $PORT"],
        replicas: 2,
        tokens: [config.requireSecret("chatToken")],
        rateLimits: [{ rps: 4, burst: 9, key: { header: "Authorization" } }],
        instanceType: "g5.xlarge",
        rootVolumeGiB: 200,
    });

    return { gatewayAddress: gateway.address, chatUrl: chat.url };
}

export const outputs = main();
