// Azure RBAC for the Function App's system-assigned managed identity: data-plane roles on the
// app storage account, telemetry publishing on Application Insights, and sending mail on the
// Communication Services resource. Nothing at resource
// group or subscription scope, no key-reading role (Storage Account Contributor and the like).
//
// Role definition ids are Azure's built-in, tenant-independent GUIDs, as listed in
// https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/storage and
// https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/monitor and
// https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/integration
// (Communication and Email Service Owner)
// (tests/deploy/test_bicep.py asserts them against the same list).

@description('Object id of the Function App\'s system-assigned identity.')
param principalId string

param storageAccountName string

param appInsightsName string

@description('The Communication Services resource the app sends mail through.')
param communicationServiceName string

var roleIds = {
  // Host state (azure-webjobs-* containers, locks, timers) and the Flex Consumption deployment
  // container, which the platform reads with this identity.
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  // Queue triggers (signup-requests, signup-requests-poison), the host's poison moves and the
  // app's own enqueue.
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  // SignupRequests (rows and address claims), SignupDeadLetters, SignupRateLimits.
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  // Microsoft Entra-authenticated telemetry (Application Insights local auth is off).
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  // Sending mail with an Entra ID token (src/mail): the built-in role for Communication and
  // Email Services, scoped to this one resource (no narrower built-in role exists for sending).
  communicationAndEmailServiceOwner: '09976791-48a7-449e-bb21-39d1a415f350'
}

resource storage 'Microsoft.Storage/storageAccounts@2025-01-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource communication 'Microsoft.Communication/communicationServices@2023-04-01' existing = {
  name: communicationServiceName
}

resource blobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roleIds.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.storageBlobDataOwner)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource queueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roleIds.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.storageQueueDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource tableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roleIds.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.storageTableDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, principalId, roleIds.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource mailSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(communication.id, principalId, roleIds.communicationAndEmailServiceOwner)
  scope: communication
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.communicationAndEmailServiceOwner)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
