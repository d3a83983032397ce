// `-c compareWith=aws` reads the deployed stack's template with CloudFormation GetTemplate. CloudFormation has no
// local edition, so the answers come from a plain HTTP endpoint here (AWS_ENDPOINT_URL_CLOUDFORMATION) in the
// documented Query-protocol wire format: a missing stack, a template, a body that is not JSON. The real SDK client
// makes the requests; nothing in it is replaced. A refused endpoint is a real connection failure.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DeployedTemplateError, fetchDeployedTemplate } from '../../infra/deployedTemplate.ts';

const NS = 'http://cloudformation.amazonaws.com/doc/2010-05-15/';
const escapeXml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** One answer for every request, and the requests' bodies (form-encoded Query parameters). */
const endpoint = async (status: number, xml: string) => {
  const requests: string[] = [];
  const server = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => {
      body += chunk;
    });
    request.on('end', () => {
      requests.push(body);
      response.writeHead(status, { 'content-type': 'text/xml' }).end(xml);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, requests, close: () => new Promise((resolve) => server.close(resolve)) };
};

const withEndpoint = async <T>(url: string, run: () => Promise<T>): Promise<T> => {
  const saved = { ...process.env };
  Object.assign(process.env, {
    AWS_ENDPOINT_URL_CLOUDFORMATION: url,
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
  });
  try {
    return await run();
  } finally {
    process.env = saved;
  }
};

test('a deployed stack: its Processed template, parsed', async () => {
  const template = { Resources: { Mapping: { Type: 'AWS::Lambda::EventSourceMapping' } } };
  const cfn = await endpoint(
    200,
    `<GetTemplateResponse xmlns="${NS}"><GetTemplateResult><TemplateBody>${escapeXml(JSON.stringify(template))}</TemplateBody>` +
      '<StagesAvailable><member>Original</member><member>Processed</member></StagesAvailable></GetTemplateResult>' +
      '<ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata></GetTemplateResponse>',
  );
  try {
    const found = await withEndpoint(cfn.url, () =>
      fetchDeployedTemplate({ stackName: 'bridge-dev', region: 'eu-west-1' }),
    );
    expect(found).toEqual(template);
    expect(new URLSearchParams(cfn.requests[0])).toEqual(
      new URLSearchParams({
        Action: 'GetTemplate',
        Version: '2010-05-15',
        StackName: 'bridge-dev',
        TemplateStage: 'Processed',
      }),
    );
  } finally {
    await cfn.close();
  }
});

test('no such stack (a first deploy): nothing to compare with', async () => {
  const cfn = await endpoint(
    400,
    `<ErrorResponse xmlns="${NS}"><Error><Type>Sender</Type><Code>ValidationError</Code>` +
      '<Message>Stack with id bridge-dev does not exist</Message></Error><RequestId>r2</RequestId></ErrorResponse>',
  );
  try {
    await expect(
      withEndpoint(cfn.url, () => fetchDeployedTemplate({ stackName: 'bridge-dev', region: 'eu-west-1' })),
    ).resolves.toBeUndefined();
  } finally {
    await cfn.close();
  }
});

test('a template that is not JSON (a YAML stack of the same name) is a DeployedTemplateError', async () => {
  const cfn = await endpoint(
    200,
    `<GetTemplateResponse xmlns="${NS}"><GetTemplateResult><TemplateBody>Resources: {}</TemplateBody>` +
      '</GetTemplateResult><ResponseMetadata><RequestId>r3</RequestId></ResponseMetadata></GetTemplateResponse>',
  );
  try {
    await expect(
      withEndpoint(cfn.url, () => fetchDeployedTemplate({ stackName: 'bridge-dev', region: 'eu-west-1' })),
    ).rejects.toThrow(/^the deployed template of stack bridge-dev in eu-west-1 is not JSON/);
  } finally {
    await cfn.close();
  }
});

test('CloudFormation unreachable: one DeployedTemplateError that says what to check', async () => {
  const failure = withEndpoint('http://127.0.0.1:1', () =>
    fetchDeployedTemplate({ stackName: 'bridge-dev', region: 'eu-west-1' }),
  );
  await expect(failure).rejects.toBeInstanceOf(DeployedTemplateError);
  await expect(failure).rejects.toThrow(
    /^cannot read the deployed template of stack bridge-dev in eu-west-1: .*Check the AWS credentials and region, or compare with the last synth instead \(-c compareWith=synth\)\.$/s,
  );
});
