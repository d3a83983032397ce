import { RemovalPolicy } from 'aws-cdk-lib';

/** What `cdk destroy` does to a stateful resource: kept for a retained (production) stack, deleted otherwise. */
export const removalPolicyFor = (retain: boolean): RemovalPolicy =>
  retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
