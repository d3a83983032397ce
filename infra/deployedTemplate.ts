/** The deployed template could not be read (no credentials, no network, no permission, not JSON). */
export class DeployedTemplateError extends Error {
  override readonly name = 'DeployedTemplateError';
}

export type DeployedStack = {
  readonly stackName: string;
  /** @default the SDK's (AWS_REGION, the profile) */
  readonly region?: string;
};

const isMissingStack = (error: unknown): boolean =>
  error instanceof Error && error.name === 'ValidationError' && /does not exist/i.test(error.message);

/**
 * The template CloudFormation holds for a stack (GetTemplate, stage `Processed`: after transforms, which is what
 * it compares a change with; the same as `Original` for a CDK template), or `undefined` when there is no such
 * stack. The SDK is imported here, so a synth that does not compare with AWS never loads it.
 */
export const fetchDeployedTemplate = async ({ stackName, region }: DeployedStack): Promise<unknown> => {
  const where = `stack ${stackName} in ${region ?? 'the default region'}`;
  const { CloudFormationClient, GetTemplateCommand } = await import('@aws-sdk/client-cloudformation');
  const client = new CloudFormationClient(region ? { region } : {});
  let body: string | undefined;
  try {
    const output = await client.send(new GetTemplateCommand({ StackName: stackName, TemplateStage: 'Processed' }));
    body = output.TemplateBody;
  } catch (error) {
    if (isMissingStack(error)) return undefined;
    throw new DeployedTemplateError(
      `cannot read the deployed template of ${where}: ${(error as Error).message}. ` +
        'Check the AWS credentials and region, or compare with the last synth instead (-c compareWith=synth).',
      { cause: error },
    );
  } finally {
    client.destroy();
  }
  if (body === undefined) return undefined;
  try {
    return JSON.parse(body);
  } catch (error) {
    throw new DeployedTemplateError(`the deployed template of ${where} is not JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
};
