import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';
import type { RouteMonitoringSegment } from './RouteMonitoringSegment.ts';

export interface BridgeDashboardProps {
  readonly dashboardName: string;
  readonly title: string;
  readonly segments: readonly RouteMonitoringSegment[];
}

/**
 * One dashboard assembled from the segments: a title, then per route its row, its breaker row and, when the route
 * parks records, its retry queue row.
 */
export class BridgeDashboard extends Construct {
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: BridgeDashboardProps) {
    super(scope, id);
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: props.dashboardName,
    });
    this.dashboard.addWidgets(new cloudwatch.TextWidget({ markdown: `# ${props.title}`, width: 24, height: 1 }));
    for (const segment of props.segments) {
      this.dashboard.addWidgets(...segment.summaryWidgets());
      this.dashboard.addWidgets(new cloudwatch.Row(...segment.widgets()));
      this.dashboard.addWidgets(new cloudwatch.Row(...segment.breakerWidgets()));
      const park = segment.parkWidgets();
      if (park.length > 0) this.dashboard.addWidgets(new cloudwatch.Row(...park));
    }
  }
}
