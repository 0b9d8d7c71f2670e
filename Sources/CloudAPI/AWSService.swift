/// The Query-protocol services the guide needs: form-encoded POST, XML answers.
public enum AWSService: String, Sendable, CaseIterable {
    /// `elb` is the classic load balancer API (only to migrate deployments made with it);
    /// `elbv2` is the application/network load balancer API the deployment uses.
    case ec2, rds, elb, elbv2, autoscaling, sts

    /// The SigV4 service name (the `SERVICE` of `aws:amz:REGION:SERVICE`).
    public var signingName: String {
        switch self {
        case .ec2: "ec2"; case .rds: "rds"; case .elb, .elbv2: "elasticloadbalancing"
        case .autoscaling: "autoscaling"; case .sts: "sts"
        }
    }
    /// Both load balancer APIs share one regional endpoint; the Version parameter tells them apart.
    var hostPrefix: String { signingName }
    var apiVersion: String {
        switch self {
        case .ec2: "2016-11-15"; case .rds: "2014-10-31"; case .elb: "2012-06-01"; case .elbv2: "2015-12-01"
        case .autoscaling: "2011-01-01"; case .sts: "2011-06-15"
        }
    }
    /// Suffix of the service-specific endpoint variable (AWS_ENDPOINT_URL_<suffix>), as the AWS SDKs name it.
    var endpointEnvSuffix: String {
        switch self {
        case .ec2: "EC2"; case .rds: "RDS"; case .elb: "ELASTIC_LOAD_BALANCING"; case .elbv2: "ELASTIC_LOAD_BALANCING_V2"
        case .autoscaling: "AUTO_SCALING"; case .sts: "STS"
        }
    }
    var displayName: String {
        switch self {
        case .ec2: "EC2"; case .rds: "RDS"; case .elb: "ELB"; case .elbv2: "ELBv2"; case .autoscaling: "AutoScaling"; case .sts: "STS"
        }
    }
}
