import { Logger } from '@aws-lambda-powertools/logger';

/** Structured JSON logs. Records are named by coordinates; payload values never appear unless a route opts in. */
export const createLogger = (route: string): Logger =>
  new Logger({ serviceName: route, logLevel: (process.env.LOG_LEVEL ?? 'INFO') as 'INFO', persistentKeys: { route } });
