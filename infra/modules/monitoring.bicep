// Logs and telemetry: a Log Analytics workspace and a workspace-based Application Insights
// component. Local (instrumentation key) authentication is off: only telemetry signed by a
// Microsoft Entra identity with "Monitoring Metrics Publisher" on the component is accepted
// (the Function App's managed identity, see role-assignments.bicep), so the connection string,
// which carries only the instrumentation key, cannot be used to write fake telemetry.

param location string

param tags object = {}

param workspaceName string

param appInsightsName string

@description('Days a log row is kept (30 is included in the Log Analytics price).')
@minValue(30)
@maxValue(730)
param retentionInDays int = 30

@description('Daily ingestion cap in GB, a brake on cost if something logs in a loop; -1 for none.')
param dailyQuotaGb int = 1

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    workspaceCapping: {
      dailyQuotaGb: dailyQuotaGb
    }
    features: {
      enableLogAccessUsingOnlyResourcePermissions: true
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
    DisableLocalAuth: true
  }
}

output appInsightsName string = appInsights.name
output workspaceName string = workspace.name
