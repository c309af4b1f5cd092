// Microsoft Graph application permissions for the Function App's managed identity: exactly
// User.Invite.All (POST /invitations), GroupMember.ReadWrite.All (POST /groups/{id}/members/$ref)
// and User.Read.All (GET /users?$filter=..., only after an invitation whose answer was lost, to
// tell whether it went through: without it such an invitation is sent again, and the partner may
// get a second e-mail; docs/RELIABILITY.md), nothing broader. An app role assignment on the Microsoft Graph service principal is what admin
// consent to an application permission is, so this deployment needs a tenant administrator
// (AppRoleAssignment.ReadWrite.All and Application.Read.All, e.g. Privileged Role Administrator),
// which is why it is separate from main.bicep: deploying the Azure resources needs no tenant role.
//
//   az deployment group create -g <rg> -f infra/graph-permissions.bicep -p principalId=<main.bicep output principalId>
//
// Uses the Microsoft Graph Bicep extension (GA, types v1.0:1.0.0, Bicep >= 0.36.1; alias in
// bicepconfig.json): https://learn.microsoft.com/graph/templates/reference/approleassignedto
// The app role ids are read from the Graph service principal's appRoles by their value, as in
// microsoftgraph/msgraph-bicep-types' quickstart templates, so no GUID is copied by hand.

extension microsoftGraphV1

@description('Object (principal) id of the Function App\'s system-assigned managed identity: the principalId output of main.bicep.')
param principalId string

var graphAppId = '00000003-0000-0000-c000-000000000000'
var appRoleValues = [
  'User.Invite.All'
  'GroupMember.ReadWrite.All'
  'User.Read.All'
]

resource microsoftGraph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: graphAppId
}

resource grants 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [
  for permission in appRoleValues: {
    principalId: principalId
    resourceId: microsoftGraph.id
    appRoleId: filter(microsoftGraph.appRoles, role => role.value == permission && contains(role.allowedMemberTypes, 'Application'))[0].id
  }
]

output grantedPermissions array = appRoleValues
